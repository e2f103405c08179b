"""Stand-in for the pip bootstrap script ansible-test downloads from its own file server.

That server is not reachable from this project's machines (only PyPI and Debian's
archive are), so the sanity target puts this file where ansible-test caches the
script. It gives a fresh virtual environment pip from Python's bundled ensurepip,
then installs what ansible-test asked for (pip at its pinned version, setuptools,
wheel) from PyPI, as the original does.
"""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"],
                      stdout=subprocess.DEVNULL)
# get-pip.py's own flags (--no-setuptools, --no-wheel) say what not to add; pip has no such flags.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + args)
