"""The adapters' side of the signed-event exchange: the sealing/opening seam and its real
implementation over the broker's crypto."""
