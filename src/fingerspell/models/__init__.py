"""Networks (plain `nn.Module`s: normalised image -> logits) and the LightningModule that trains them."""
