// Device names (model/device.h): cpu / cuda / cuda:N parse; anything else, and a GPU this process does
// not have, is an error naming the key.
#include "model/device.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "tests/model/model_test_util.h"

namespace r1kit {
namespace {

TEST(Device, ParsesCpuCudaAndCudaN) {
  EXPECT_EQ(parse_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_EQ(parse_device("cuda", "d", false), torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(parse_device("cuda:3", "d", false), torch::Device(torch::kCUDA, 3));
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1:2", "CUDA", "cuda:0000"}) {
    const std::string msg = test::error_of([&] { parse_device(bad, "run.yaml: key 'device'", false); });
    EXPECT_NE(msg.find("run.yaml: key 'device': '" + std::string(bad) + "' is not a device"), std::string::npos)
        << bad << ": " << msg;
  }
}

TEST(Device, AGpuThisProcessDoesNotHaveIsAnError) {
  const int64_t n = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  const std::string name = "cuda:" + std::to_string(n);  // one past the last visible GPU
  const std::string msg = test::error_of([&] { parse_device(name, "run.yaml: key 'device'"); });
  std::printf("  %s -> %s\n", name.c_str(), msg.c_str());
  EXPECT_NE(msg.find("run.yaml: key 'device': '" + name + "' asks for"), std::string::npos) << msg;
  if (n == 0) {
    EXPECT_NE(msg.find(describe_cuda_devices()), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace r1kit
