"""The planning stages (access, backbone, repeaters, trust, memory) and design assembly."""
