"""Wire formats: parsing requests and rendering responses, one module per vendor protocol."""
