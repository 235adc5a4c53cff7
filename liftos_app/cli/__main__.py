import sys

from liftos_app.cli import main

sys.exit(main())
