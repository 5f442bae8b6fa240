import sys

from zvc69_rt.cli import main

sys.exit(main())
