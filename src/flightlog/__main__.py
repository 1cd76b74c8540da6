from flightlog.entry import main

main()
