"""Node and control-plane faults: node file techniques, the node agent, restore."""
