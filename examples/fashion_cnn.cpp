// Fashion-MNIST with a small CNN, from C++ (the same model as
// examples/fashion_cnn.py): conv5x5 1->16 pad 2, ReLU, max-pool 2,
// conv5x5 16->32 pad 2, ReLU, max-pool 2, dense 1568->128 ReLU, dense
// 128->10, softmax cross-entropy, Adam lr 1e-3, batch 64.
//
//   build/fashion_cnn [--epochs 4] [--limit N] [--threads T] [--dir DIR]
//   mpirun -np 2 build/fashion_cnn --threads 1     (data parallel, issue 15)
//
// Under mpirun each step takes 64 images in all, 64 / N on each rank, the
// gradients are averaged over the ranks (Trainer.fit after dist::init()) and
// rank 0 prints.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "core/threads.h"
#include "data/idx.h"
#include "dist/comm.h"
#include "models/seed_api.h"

using namespace lldl;

int main(int argc, char** argv) {
  int64_t epochs = 4, limit = 0;
  std::string dir = kFashionMnistDir;
  try {
    dist::init();  // a job of one rank unless started by mpirun
    const int world = dist::world_size();
    if (64 % world) throw ValueError("64 images per step do not split over " + std::to_string(world) + " ranks");
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (i + 1 >= argc) throw ValueError("missing value after " + a);
      if (a == "--epochs") epochs = std::stoll(argv[++i]);
      else if (a == "--limit") limit = std::stoll(argv[++i]);
      else if (a == "--threads") set_num_threads(std::stoi(argv[++i]));
      else if (a == "--dir") dir = argv[++i];
      else throw ValueError("unknown flag " + a);
    }
    ImageSet train = load_fashion_mnist(dir, "train", limit);
    ImageSet test = load_fashion_mnist(dir, "t10k");
    NeuralNetwork2 nn(fashion_cnn_layers(), LossType::CrossEntropy, 42, {1, 28, 28});
    Trainer trainer(nn, OptimKind::Adam, 1e-3f);
    Matrix X{train.images.data(), train.count, 784}, Xt{test.images.data(), test.count, 784};
    Targets Y{nullptr, train.labels.data(), train.count, 1};
    Targets Yt{nullptr, test.labels.data(), test.count, 1};
    History h = trainer.fit(X, Y, Xt, Yt, epochs, 1, 64 / world, true, 2);
    if (dist::rank() == 0)
      std::printf("test accuracy %.4f after %lld epochs, %.1f s, %.0f training images/s (%d rank(s) x %d threads)\n",
                  h.back().test_accuracy, (long long)epochs, h.back().elapsed_s, h.back().samples_per_s, world,
                  get_num_threads());
  } catch (const std::exception& e) {
    std::cerr << "fashion_cnn: " << e.what() << "\n";
    return 1;
  }
}
