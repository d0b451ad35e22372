"""Stanford Research Systems: SIM900 mainframe with SIM928 / SIM921 modules, SR830 lock-in."""
