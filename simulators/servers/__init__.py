"""Protocol servers: one threaded TCP server per simulated instrument, speaking its real wire protocol."""
