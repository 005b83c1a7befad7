-- Signed firmware (issue 17): an image uploaded with the manufacturer's signature keeps it and
-- its signing certificate, sent as they are in SignedUpdateFirmware (null: the central's
-- firmware signer signs the image for a signed campaign).
ALTER TABLE firmware_images ADD COLUMN signature TEXT;
ALTER TABLE firmware_images ADD COLUMN signing_certificate TEXT;
