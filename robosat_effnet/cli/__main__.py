"""`python -m robosat_effnet.cli` (and `torchrun -m robosat_effnet.cli`) runs `rs-effnet`."""

from robosat_effnet.cli import main

if __name__ == "__main__":
    main(prog_name="rs-effnet")
