module sconify/runtime_shim

go 1.19
