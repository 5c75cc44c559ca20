"""The shipped suites (`*.toml`), installed as the package data of `harness.suites` (setup.py maps this
folder there); `harness.app.shipped` finds them by name and `loopprobe suites` lists them."""
