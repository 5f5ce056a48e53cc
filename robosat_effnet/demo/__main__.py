"""`python -m robosat_effnet.demo [OUT] [--epochs N]`: what `make demo` runs."""

from robosat_effnet.demo.run import main

main()
