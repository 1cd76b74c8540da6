from flightlog.cli import main

main()
