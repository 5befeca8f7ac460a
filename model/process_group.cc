#include "model/process_group.h"

#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>

#include "core/check.h"

// Gloo ships with Debian's libtorch-dev (headers from libgloo-dev) and with some PyPI wheels; others
// (torch 2.11) ship ProcessGroupGloo.hpp without the gloo headers it includes.
#if __has_include(<gloo/algorithm.h>)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define R1_HAVE_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(R1_TORCH_CUDA) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define R1_HAVE_NCCL 1
#endif

namespace r1kit {
namespace {

int parse_int(const char* name, const char* value, int lo) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  R1_CHECK(end != value && *end == '\0' && v >= lo && v <= (1 << 30), "environment variable ", name, "='", value,
           "' is not an integer >= ", lo);
  return static_cast<int>(v);
}

// Collectives through any c10d process group type (ProcessGroup in LibTorch 1.x, Backend in 2.x).
template <typename PG>
class C10dGroup : public ProcessGroup {
 public:
  C10dGroup(c10::intrusive_ptr<PG> pg, int rank, int world, const char* backend, bool stage_on_host,
            std::chrono::milliseconds timeout)
      : pg_(std::move(pg)), stage_on_host_(stage_on_host), timeout_(timeout) {
    rank_ = rank;
    world_size_ = world;
    backend_ = backend;
    is_gloo_ = std::string(backend) == "gloo";
  }

  std::unique_ptr<Pending> start_all_reduce_sum(torch::Tensor flat) override {
    torch::NoGradGuard no_grad;
    R1_CHECK(flat.is_contiguous(), "start_all_reduce_sum: the tensor must be contiguous");
    auto p = std::make_unique<GroupPending>();
    p->group = this;
    p->target = flat;
    p->buffer = stage_on_host_ ? flat.cpu() : flat;
    // Gloo (1.13) has no 16-bit float reductions: sum those in float32 and round once.
    if (is_gloo_ && (flat.scalar_type() == torch::kBFloat16 || flat.scalar_type() == torch::kHalf)) {
      p->buffer = p->buffer.to(torch::kFloat32);
    }
    std::vector<torch::Tensor> io{p->buffer};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    p->work = pg_->allreduce(io, opts);
    return p;
  }

  void broadcast(const std::vector<torch::Tensor>& tensors, int root) override {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& t : tensors) {
      torch::Tensor buf = stage_on_host_ ? t.detach().cpu().contiguous() : t.detach().contiguous();
      if (is_gloo_ && (buf.scalar_type() == torch::kBFloat16 || buf.scalar_type() == torch::kHalf)) {
        buf = buf.to(torch::kFloat32);  // exact; Gloo (1.13) has no 16-bit types
      }
      std::vector<torch::Tensor> io{buf};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      wait(pg_->broadcast(io, opts), "broadcast");
      if (!buf.is_same(t)) {
        t.detach().copy_(buf);
      } else if (!t.is_inference()) {
        // Written in place by the backend: count it as a write (model/decode_weight_copy.h watches versions).
        torch::autograd::impl::bump_version(t);
      }
    }
  }

  void barrier() override { wait(pg_->barrier(c10d::BarrierOptions()), "barrier"); }

 private:
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
    try {
      work->wait(timeout_);
    } catch (const std::exception& e) {
      R1_FAIL("distributed ", what, " failed on rank ", rank_, " of ", world_size_, " (", backend_,
              "; a peer died or timed out): ", e.what());
    }
  }

  struct GroupPending : Pending {
    C10dGroup* group = nullptr;
    torch::Tensor target, buffer;  // buffer: target itself, or its host / float32 staging copy
    c10::intrusive_ptr<c10d::Work> work;
    void wait() override {
      group->wait(work, "all_reduce");
      if (!buffer.is_same(target)) {
        torch::NoGradGuard no_grad;
        target.copy_(buffer);
      }
    }
  };

  c10::intrusive_ptr<PG> pg_;
  bool stage_on_host_;
  bool is_gloo_ = false;
  std::chrono::milliseconds timeout_;
};

}  // namespace

DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* name) -> const char* {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v && *v ? v : nullptr;
  };
  DistEnv env;
  const char *rank = get("RANK"), *world = get("WORLD_SIZE");
  if (rank || world) {
    R1_CHECK(rank && world, "environment: RANK and WORLD_SIZE must be set together (RANK=", rank ? rank : "",
             ", WORLD_SIZE=", world ? world : "", ")");
    env.source = "torchrun";
    env.rank = parse_int("RANK", rank, 0);
    env.world_size = parse_int("WORLD_SIZE", world, 1);
    env.local_rank = get("LOCAL_RANK") ? parse_int("LOCAL_RANK", get("LOCAL_RANK"), 0) : env.rank;
  } else if (get("SLURM_PROCID") && get("SLURM_NTASKS")) {
    env.source = "slurm";
    env.rank = parse_int("SLURM_PROCID", get("SLURM_PROCID"), 0);
    env.world_size = parse_int("SLURM_NTASKS", get("SLURM_NTASKS"), 1);
    env.local_rank = get("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", get("SLURM_LOCALID"), 0) : 0;
    if (get("SLURM_LAUNCH_NODE_IPADDR")) env.master_addr = get("SLURM_LAUNCH_NODE_IPADDR");
  } else {
    return env;  // one process
  }
  R1_CHECK(env.rank < env.world_size, "environment: rank ", env.rank, " must be < world size ", env.world_size);
  if (get("MASTER_ADDR")) env.master_addr = get("MASTER_ADDR");
  if (get("MASTER_PORT")) env.master_port = parse_int("MASTER_PORT", get("MASTER_PORT"), 1);
  R1_CHECK(env.master_port <= 65535, "environment variable MASTER_PORT=", env.master_port, " is not a port");
  return env;
}

std::shared_ptr<ProcessGroup> ProcessGroup::create(const DistEnv& env, torch::Device device,
                                                   std::chrono::milliseconds timeout) {
  R1_CHECK(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, "process group: bad rank ", env.rank,
           " / world size ", env.world_size);
  c10d::TCPStoreOptions store_opts;
  store_opts.port = static_cast<uint16_t>(env.master_port);
  store_opts.isServer = env.rank == 0;
  store_opts.numWorkers = static_cast<size_t>(env.world_size);
  store_opts.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_opts);
  } catch (const std::exception& e) {
    R1_FAIL("process group: rank ", env.rank, " could not reach the TCPStore at ", env.master_addr, ":",
            env.master_port, " (MASTER_ADDR/MASTER_PORT): ", e.what());
  }
#ifdef R1_HAVE_NCCL
  if (device.is_cuda()) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts);
    return std::make_shared<C10dGroup<c10d::ProcessGroupNCCL>>(pg, env.rank, env.world_size, "nccl", false, timeout);
  }
#endif
#ifndef R1_HAVE_GLOO
  R1_FAIL("process group: this LibTorch was installed without the gloo headers, so r1kit was built without the gloo "
          "backend (CPU data parallel); NCCL ", device.is_cuda() ? "is not available either" : "needs CUDA tensors");
#else
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  // Loopback-friendly: the device for the hostname the peers resolve; MASTER_ADDR's interface.
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr == "localhost" ? "127.0.0.1"
                                                                                                           : env.master_addr));
  opts->threads = 2;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  try {
    pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
  } catch (const std::exception& e) {
    R1_FAIL("process group: rank ", env.rank, " of ", env.world_size, " could not connect (gloo): ", e.what());
  }
  return std::make_shared<C10dGroup<c10d::ProcessGroupGloo>>(pg, env.rank, env.world_size, "gloo", device.is_cuda(),
                                                             timeout);
#endif
}

void ProcessGroup::all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  torch::NoGradGuard no_grad;
  // Buckets of consecutive same-dtype tensors, flattened into one buffer each.
  struct Bucket {
    std::vector<torch::Tensor> members;
    torch::Tensor flat;
    std::unique_ptr<Pending> work;
  };
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (const torch::Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    if (buckets.empty() || bytes + b > bucket_bytes || buckets.back().members[0].dtype() != t.dtype() ||
        buckets.back().members[0].device() != t.device()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().members.push_back(t);
    bytes += b;
  }
  for (Bucket& bk : buckets) {  // start every bucket, then wait: Gloo's threads overlap them
    std::vector<torch::Tensor> flat;
    for (const auto& t : bk.members) flat.push_back(t.reshape({-1}));
    bk.flat = torch::cat(flat);
    bk.work = start_all_reduce_sum(bk.flat);
  }
  for (Bucket& bk : buckets) {
    bk.work->wait();
    int64_t offset = 0;
    for (const auto& t : bk.members) {
      t.copy_(bk.flat.slice(0, offset, offset + t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

std::vector<double> ProcessGroup::all_reduce_sum(std::vector<double> values) {
  if (values.empty()) return values;
  torch::Tensor t = torch::tensor(values, torch::kFloat64);
  all_reduce_sum({t});
  return {t.data_ptr<double>(), t.data_ptr<double>() + t.numel()};
}

std::vector<double> ProcessGroup::all_gather(const std::vector<double>& values) {
  std::vector<double> sizes(static_cast<size_t>(world_size_), 0.0);
  sizes[static_cast<size_t>(rank_)] = static_cast<double>(values.size());
  sizes = all_reduce_sum(sizes);
  int64_t total = 0, offset = 0;
  for (int r = 0; r < world_size_; ++r) {
    if (r < rank_) offset += static_cast<int64_t>(sizes[r]);
    total += static_cast<int64_t>(sizes[r]);
  }
  std::vector<double> all(static_cast<size_t>(total), 0.0);  // each rank fills its slot, the sum gathers
  std::copy(values.begin(), values.end(), all.begin() + offset);
  return all_reduce_sum(std::move(all));
}

}  // namespace r1kit
