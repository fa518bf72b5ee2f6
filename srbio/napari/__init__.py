"""srbio's napari plugin (npe2 manifest ``napari.yaml``): readers of srbio's outputs.

The logic (what to show, where) lives in :mod:`srbio.io.view`; this package only turns views
into napari layer data. Nothing else in srbio imports napari or Qt.
"""
