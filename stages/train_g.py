"""`visdial train-g`: pretrain a generative model (encoder + LSTM decoder) by MLE."""

from stages.common import run_command
from stages.pretrain import command

main = command(
    "train_g", "Pretrain G (paper §5: 20 epochs of MLE): lf-g, hrea-g, mn-g, hciae-g-mle."
)

if __name__ == "__main__":
    run_command(main)
