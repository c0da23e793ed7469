"""fsanet_geo.train.setup: a run's :class:`~fsanet_geo.train.config.TrainConfig` from what a
command was asked (:class:`~fsanet_geo.train.setup.request.TrainRequest`): defaults chosen,
options checked, a resumed run's settings read back.

May import the rest of fsanet_geo.train, fsanet_geo.data, fsanet_geo.geodata and
fsanet_geo.model.files; nothing else in fsanet_geo.train imports it.
"""
