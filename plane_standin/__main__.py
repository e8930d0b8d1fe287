import sys

from plane_standin.server import main

sys.exit(main())
