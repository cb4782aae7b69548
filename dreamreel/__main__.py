from .cli.commands import main
import sys

sys.exit(main())
