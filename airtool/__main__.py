from airtool.cli import main

main()
