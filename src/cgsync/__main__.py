from cgsync.cli import main

main()
