from wharf.cli.main import main

main()
