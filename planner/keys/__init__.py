"""Key reconstruction over partially-trusted relays and key pools."""
