package opsworks

// MaxSourceBytes bounds the unpacked size of the archives of one command.
const MaxSourceBytes = 256 << 20
