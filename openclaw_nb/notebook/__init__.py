"""The notebook layer: widgets, live views and magics. Imports IPython/ipywidgets/pandas lazily."""
