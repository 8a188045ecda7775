namespace avm::sessions {}
