"""srbio's napari plugin (npe2 manifest ``napari.yaml``): readers, writer, sample data, widgets.

The logic (what to show and where, scores, QC views, predictions) lives in
:mod:`srbio.io.view`, :mod:`srbio.stages.inspect`, :mod:`srbio.core.qc` and
:mod:`srbio.core.region`; this package only turns it into napari layers and Qt widgets.
Nothing else in srbio imports napari or Qt.
"""
