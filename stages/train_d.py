"""`visdial train-d`: pretrain a discriminative model (encoder + answer encoder)."""

from stages.common import run_command
from stages.pretrain import command

main = command("train_d", "Pretrain D (paper §5: 30 epochs), e.g. lf-d, hciae-d-np-att.")

if __name__ == "__main__":
    run_command(main)
