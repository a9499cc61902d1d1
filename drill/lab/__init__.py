"""The lab: a containerlab topology file realized with network namespaces (no Docker).

Public entry points: :func:`drill.lab.topology.load_topology` (the file reader),
:func:`drill.lab.plan.derive_plan` (what the built-in backend will create) and
:class:`drill.lab.lab.Lab` (up, down, status, exec, faults).
"""
