"""The promo-code domain: one model behind the four vendor vocabularies."""
