"""The comparison workbench's core, without Qt: what the Attack, Plots and Export docks ask
for as plain objects (driven by the widgets, the demo and the tests alike), the results
folder that keeps attack results as they complete, and the session file."""
