# Test modules are imported with --import-mode=importlib, which does not put
# their directory on sys.path; the shared request/response helpers live here.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
