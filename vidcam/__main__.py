import sys

from vidcam.cli import main

sys.exit(main())
