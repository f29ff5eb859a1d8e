// The alpha-beta measurements for bench/dist_scaling.py: MPI ping-pong
// between ranks 0 and 1 (half the round trip: one message's latency plus its
// bytes over the bandwidth) and MPI_Allreduce (float sum, all ranks) at
// message sizes 4 B..64 MB in steps of 4x. Built when CMake finds MPI;
// plain MPI, not lldl's communicator, so that it measures the transport the
// communicator sits on and nothing of ours.
//
//   mpirun -np 2 build/bench_mpi_comm [--max-bytes N] [--repeats R] > comm.csv
//
// CSV on rank 0: kind,ranks,bytes,iters,repeats,median_us,min_us,max_us where
// each repeat times `iters` back-to-back operations and reports one
// operation's mean; median/min/max are over the repeats.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

// Enough iterations that one repeat moves ~64 MB or lasts >= 200 operations,
// so that the timer's resolution and the loop's start are negligible.
int iterations(size_t bytes) {
  size_t it = (size_t(64) << 20) / bytes;
  return static_cast<int>(std::clamp<size_t>(it, 4, 2000));
}

// One repeat of ping-pong: microseconds per one-way message.
double pingpong(int rank, char* buf, size_t bytes, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < iters; ++i) {
    if (rank == 0) {
      MPI_Send(buf, static_cast<int>(bytes), MPI_BYTE, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(buf, static_cast<int>(bytes), MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buf, static_cast<int>(bytes), MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf, static_cast<int>(bytes), MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    }
  }
  double t = MPI_Wtime() - t0;
  MPI_Bcast(&t, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);  // rank 0's clock is the one reported
  return t / iters / 2 * 1e6;
}

// One repeat of all-reduce: microseconds per operation, the slowest rank's.
double allreduce(float* in, float* out, size_t bytes, int iters) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (int i = 0; i < iters; ++i)
    MPI_Allreduce(in, out, static_cast<int>(bytes / sizeof(float)), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  double t = MPI_Wtime() - t0, worst = 0;
  MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst / iters * 1e6;
}

long flag(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const size_t max_bytes = static_cast<size_t>(flag(argc, argv, "--max-bytes", 64L << 20));
  const int repeats = static_cast<int>(flag(argc, argv, "--repeats", 5));
  if (max_bytes < 4 || repeats < 1) {
    if (rank == 0) std::fprintf(stderr, "bench_mpi_comm: --max-bytes must be >= 4, --repeats >= 1\n");
    MPI_Finalize();
    return 2;
  }
  std::vector<float> a(max_bytes / sizeof(float), 1.0f), b(a.size());
  if (rank == 0) std::printf("kind,ranks,bytes,iters,repeats,median_us,min_us,max_us\n");
  for (const char* kind : {"pingpong", "allreduce"}) {
    if (ranks < 2 && std::strcmp(kind, "pingpong") == 0) continue;  // needs a partner
    for (size_t bytes = 4; bytes <= max_bytes; bytes *= 4) {
      int iters = iterations(bytes);
      bool pp = std::strcmp(kind, "pingpong") == 0;
      pp ? pingpong(rank, reinterpret_cast<char*>(a.data()), bytes, 2)  // warm-up
         : allreduce(a.data(), b.data(), bytes, 2);
      std::vector<double> us;
      for (int r = 0; r < repeats; ++r)
        us.push_back(pp ? pingpong(rank, reinterpret_cast<char*>(a.data()), bytes, iters)
                        : allreduce(a.data(), b.data(), bytes, iters));
      Stats s = stats(us);
      if (rank == 0)
        std::printf("%s,%d,%zu,%d,%d,%.3f,%.3f,%.3f\n", kind, ranks, bytes, iters, repeats, s.median, s.min,
                    s.max);
      std::fflush(stdout);
    }
  }
  MPI_Finalize();
  return 0;
}
