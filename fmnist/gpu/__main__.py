"""python -m fmnist.gpu run|data|size|show|unpack: training on a GPU machine of your own (docs/gpu.md).

`run` is the prepared command on the GPU machine (fmnist.gpu.plan; scripts/gpu_train.sh calls it); the others
run here, before and after it (fmnist.gpu.local).
"""

import sys

from fmnist.gpu import local, plan


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:
        return plan.main(argv[1:])
    return local.main(argv)


if __name__ == "__main__":
    sys.exit(main())
