namespace avm::qmp {}
