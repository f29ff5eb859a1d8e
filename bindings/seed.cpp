// The seed's API: LayerType, ActivationType, LossType, OptimiserType,
// Layer2, NeuralNetwork2, Trainer.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings/arrays.h"
#include "bindings/module.h"
#include "core/error.h"

namespace lldl::py_bind {

namespace {

py::array predict(NeuralNetwork2& nn, const py::handle& X) {
  py::array keep;
  Matrix x = as_samples(X, "X", nn.input_shape(), keep);
  std::vector<float> y;
  {
    py::gil_scoped_release nogil;
    y = nn.predict(x);
  }
  py::array_t<float> out({x.rows, nn.output_features()});
  std::copy(y.begin(), y.end(), out.mutable_data());
  return out;
}

py::dict history_dict(const History& h) {
  py::list epoch, train_loss, test_loss, train_acc, test_acc, elapsed, rate;
  for (const EvalRecord& r : h) {
    epoch.append(r.epoch);
    train_loss.append(r.train_loss);
    test_loss.append(r.test_loss);
    train_acc.append(r.train_accuracy < 0 ? py::none() : py::cast(r.train_accuracy));
    test_acc.append(r.test_accuracy < 0 ? py::none() : py::cast(r.test_accuracy));
    elapsed.append(r.elapsed_s);
    rate.append(r.samples_per_s);
  }
  py::dict d;
  d["epoch"] = epoch;
  d["train_loss"] = train_loss;
  d["test_loss"] = test_loss;
  d["train_accuracy"] = train_acc;
  d["test_accuracy"] = test_acc;
  d["elapsed_s"] = elapsed;
  d["samples_per_s"] = rate;
  return d;
}

// An integer argument of fit: Python ints and NumPy integers; bool, float and
// others are a TypeError naming the argument (pybind11's own message would
// only list the signature).
int64_t as_int(const py::object& v, const char* name) {
  if (py::isinstance<py::bool_>(v) || !PyIndex_Check(v.ptr()))
    throw TypeError(std::string("fit: ") + name + " must be an int, got " +
                    std::string(py::str(py::type::of(v).attr("__name__"))));
  py::object i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  long long r = PyLong_AsLongLong(i.ptr());
  if (r == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw ValueError(std::string("fit: ") + name + " does not fit in 64 bits");
  }
  return r;
}

py::dict fit(Trainer& t, const py::handle& X, const py::handle& Y, const py::handle& Xt,
             const py::handle& Yt, const py::object& epochs_arg, const py::object& eval_every_arg,
             const py::object& batch, bool restart, const py::object& verbose_arg) {
  int64_t epochs = as_int(epochs_arg, "epochs");
  int64_t eval_every = as_int(eval_every_arg, "eval_every");
  int64_t verbose = as_int(verbose_arg, "verbose");
  if (verbose != static_cast<int>(verbose))  // would not survive the narrowing below
    throw ValueError("fit: verbose must be 0, 1 or 2, got " + std::to_string(verbose));
  bool ce = t.network().loss() == LossType::CrossEntropy;
  py::array kx, ky, kxt, kyt;
  const std::vector<int64_t>& shape = t.network().input_shape();
  Matrix x = as_samples(X, "X_train", shape, kx);
  Targets y = as_targets(Y, "Y_train", ce, ky);
  Matrix xt;
  Targets yt;
  if (Xt.is_none() != Yt.is_none())
    throw ValueError("fit: give both X_test and Y_test, or neither");
  if (!Xt.is_none()) {
    xt = as_samples(Xt, "X_test", shape, kxt);
    yt = as_targets(Yt, "Y_test", ce, kyt);
    if (xt.rows == 0) throw ValueError("fit: X_test is empty (0 rows)");
  }
  int64_t bs = batch.is_none() ? std::max<int64_t>(x.rows, 1) : as_int(batch, "batch_size");
  // Progress goes to sys.stdout so notebooks show it; Ctrl-C stops training.
  t.set_sink([](const std::string& s) {
    py::gil_scoped_acquire gil;
    py::module_::import("sys").attr("stdout").attr("write")(s);
    py::module_::import("sys").attr("stdout").attr("flush")();
  });
  t.set_interrupt_check([] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  });
  History h;
  {
    py::gil_scoped_release nogil;
    h = t.fit(x, y, xt, yt, epochs, eval_every, bs, restart, static_cast<int>(verbose));
  }
  return history_dict(h);
}

}  // namespace

void bind_seed(py::module_& m) {
  py::enum_<LayerType>(m, "LayerType")
      .value("Dense", LayerType::Dense)
      .value("Conv2D", LayerType::Conv2D)
      .value("MaxPool2D", LayerType::MaxPool2D)
      .value("AvgPool2D", LayerType::AvgPool2D)
      .value("Flatten", LayerType::Flatten)
      .value("Dropout", LayerType::Dropout)
      .value("BatchNorm", LayerType::BatchNorm);
  py::enum_<ActivationType>(m, "ActivationType")
      .value("Linear", ActivationType::Linear)
      .value("Sigmoid", ActivationType::Sigmoid)
      .value("Tanh", ActivationType::Tanh)
      .value("ReLU", ActivationType::ReLU)
      .value("Softmax", ActivationType::Softmax);
  py::enum_<LossType>(m, "LossType")
      .value("MSE", LossType::MSE)
      .value("CROSS_ENTROPY", LossType::CrossEntropy);
  py::enum_<OptimKind>(m, "OptimiserType")
      .value("SGD", OptimKind::SGD)
      .value("Momentum", OptimKind::Momentum)
      .value("Adam", OptimKind::Adam)
      .value("AdamW", OptimKind::AdamW);

  py::class_<Layer2>(m, "Layer2",
                     "One layer of a NeuralNetwork2: type, units (Dense width, Conv2D output "
                     "channels), activation, and kernel/stride/padding (Conv2D, pools) or rate "
                     "(Dropout) as keywords. NeuralNetwork2 checks them.")
      .def(py::init([](LayerType t, int64_t units, ActivationType a, int64_t kernel, int64_t stride,
                       int64_t padding, float rate, const py::object& channels) {
             if (!channels.is_none()) {
               if (units != 0) throw ValueError("Layer2: give units or channels, not both");
               units = channels.cast<int64_t>();
             }
             if ((t == LayerType::Dense || t == LayerType::Conv2D) && units <= 0)
               throw ValueError(std::string("Layer2: ") + layer_type_name(t) +
                                " units must be > 0, got " + std::to_string(units));
             if (units < 0) throw ValueError("Layer2: units must be >= 0");
             return Layer2{t, units, a, kernel, stride, padding, rate};
           }),
           py::arg("type"), py::arg("units") = 0, py::arg("activation") = ActivationType::Linear,
           py::kw_only(), py::arg("kernel") = 0, py::arg("stride") = 0, py::arg("padding") = 0,
           py::arg("rate") = 0.0f, py::arg("channels") = py::none())
      .def_readonly("kernel", &Layer2::kernel)
      .def_readonly("stride", &Layer2::stride)
      .def_readonly("padding", &Layer2::padding)
      .def_readonly("rate", &Layer2::rate)
      .def_readonly("type", &Layer2::type)
      .def_readonly("units", &Layer2::units)
      .def_readonly("activation", &Layer2::activation)
      .def("__repr__", [](const Layer2& l) {
        return "Layer2(LayerType." + std::string(layer_type_name(l.type)) + ", " +
               std::to_string(l.units) + ", ActivationType." + activation_name(l.activation) + ")";
      });

  py::class_<NeuralNetwork2>(m, "NeuralNetwork2",
                             "A network described by layers, compiled onto lldl's tape. The "
                             "input size is taken from the first fit.")
      .def(py::init<std::vector<Layer2>, LossType, uint64_t, std::vector<int64_t>>(),
           py::arg("layers"), py::arg("loss"), py::arg("seed") = 42, py::kw_only(),
           py::arg("input_shape") = std::vector<int64_t>{},
           "input_shape: one sample's shape, e.g. (1, 28, 28) for images given as (N, 784) "
           "rows or (N, 1, 28, 28) arrays; omitted for dense networks.")
      .def_property_readonly("input_shape", &NeuralNetwork2::input_shape)
      .def("predict", &predict, py::arg("X"),
           "Network output for each row of X, as a new float32 array (rows x outputs).")
      .def_property_readonly("layers", &NeuralNetwork2::layers)
      .def_property_readonly("loss", &NeuralNetwork2::loss)
      .def_property_readonly("input_features", &NeuralNetwork2::input_features)
      .def_property_readonly("output_features", &NeuralNetwork2::output_features)
      .def_property_readonly("num_parameters", &NeuralNetwork2::num_parameters)
      .def("set_profiling", &NeuralNetwork2::set_profiling, py::arg("on") = true,
           "Profile the network's ops (kept across rebuilds for another input size).")
      .def("set_memory_planning", &NeuralNetwork2::set_memory_planning, py::arg("on") = true,
           "Plan the network graph's step memory (Graph.set_memory_planning); kept across "
           "rebuilds.")
      .def_property_readonly("memory_planning", &NeuralNetwork2::memory_planning)
      .def("memory_report",
           [](const NeuralNetwork2& nn) { return memory_report_dict(nn.memory_report()); },
           "Graph.memory_report() of the network's graph.")
      .def("profile", [](const NeuralNetwork2& nn) { return profile_dict(nn.profile()); },
           "{op: {'forward': {...}, 'backward': {...}}}, as Graph.profile().")
      .def("profile_table",
           [](const NeuralNetwork2& nn, bool roofline) { return profile_text(nn.profile(), roofline); },
           py::arg("roofline") = false)
      .def("parameters",
           [](NeuralNetwork2& nn) {
             py::dict d;
             NeuralNetwork2::InUse in_use = nn.claim("parameters");
             if (!nn.built()) return d;
             for (Tensor p : nn.graph().params()) {
               const TensorDesc& desc = nn.graph().desc(p);
               std::vector<py::ssize_t> shape(desc.shape.d, desc.shape.d + desc.shape.ndim);
               py::array_t<float> a(shape);
               std::copy_n(static_cast<const float*>(desc.data), desc.shape.numel(),
                           a.mutable_data());
               d[py::str(desc.name)] = a;
             }
             return d;
           },
           "Copies of the parameters by name ('layers.0.weight' is inputs x units).");

  py::class_<Trainer>(m, "Trainer", "Fits a NeuralNetwork2 with an optimiser.")
      .def(py::init([](NeuralNetwork2& nn, OptimKind kind, float lr, float momentum, float beta1,
                       float beta2, float eps, float weight_decay) {
             OptimConfig c;
             c.momentum = momentum;
             c.beta1 = beta1;
             c.beta2 = beta2;
             c.eps = eps;
             c.weight_decay = weight_decay;
             return new Trainer(nn, kind, lr, c);
           }),
           py::keep_alive<1, 2>(), py::arg("nn"), py::arg("optimiser"), py::arg("lr") = 0.01f,
           py::arg("momentum") = 0.9f, py::arg("beta1") = 0.9f, py::arg("beta2") = 0.999f,
           py::arg("eps") = 1e-8f, py::arg("weight_decay") = 0.0f)
      .def("fit", &fit, py::arg("X_train"), py::arg("Y_train"), py::arg("X_test") = py::none(),
           py::arg("Y_test") = py::none(), py::arg("epochs") = 10, py::arg("eval_every") = 10,
           py::arg("batch_size") = py::none(), py::arg("restart") = true, py::arg("verbose") = 2,
           "Trains and returns the history: a dict of lists (epoch, train_loss, test_loss, "
           "train_accuracy, test_accuracy, elapsed_s, samples_per_s). batch_size None means "
           "all rows in one batch (so does any size above the row count); verbose 0 is "
           "silent, 1 a progress bar, 2 a line per evaluation.")
      .def("dist_stats", [](const Trainer& t) { return grad_sync_stats_dict(t.dist_stats()); },
           "The last data-parallel fit's gradient averaging: steps, buckets, comm_s (summed over\n"
           "steps), exposed_s (the part not hidden under backward) and hidden_fraction.")
      .def("evaluate",
           [](Trainer& t, const py::handle& X, const py::handle& Y) {
             py::array kx, ky;
             Matrix x = as_samples(X, "X", t.network().input_shape(), kx);
             Targets y = as_targets(Y, "Y", t.network().loss() == LossType::CrossEntropy, ky);
             auto [loss, acc] = t.evaluate(x, y);
             return py::make_tuple(loss, acc < 0 ? py::none() : py::cast(acc));
           },
           py::arg("X"), py::arg("Y"), "(loss, accuracy or None) over a data set.");
}

}  // namespace lldl::py_bind
