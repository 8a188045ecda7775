namespace avm::launcher {}
