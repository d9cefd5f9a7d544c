import os
import sys

# Test helpers live beside the tests; make them importable under --import-mode=importlib.
sys.path.insert(0, os.path.dirname(__file__))
