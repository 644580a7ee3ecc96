// make_nccl_communicator in a build without the NCCL engine (no CUDA, or NCCL not found).
#include <c10/util/Exception.h>

#include "graphshard/nccl.h"

namespace graphshard {

bool nccl_engine_built() {
  return false;
}

CommPtr make_nccl_communicator(const c10::intrusive_ptr<c10d::Store>&, int rank, int, int,
                               std::chrono::milliseconds) {
  TORCH_CHECK(false, "graphshard::make_nccl_communicator: this build has no NCCL engine ",
              "(configure with GRAPHSHARD_CUDA=ON on a machine whose torch ships NCCL) (rank ",
              rank, ")");
}

}  // namespace graphshard
