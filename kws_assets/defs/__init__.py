"""The Dagster definitions, loaded by ``dg.load_from_defs_folder``: every module below holds
definitions only (assets, asset checks, jobs, schedules; sensors are built from the config by
``sensors.build_sensors``).  A file ``dg scaffold defs`` writes here is picked up as it is.
The machinery they use lives in :mod:`kws_assets.lib`; the wiring in
:mod:`kws_assets.definitions`."""
