// Package linktest has test doubles for package link: an in-memory network
// (Network, Listener) that link's server and client run over instead of
// TCP, and a fake device backend (Backend) over a real storage.Store.
//
// Connections are buffered pipes with deadlines (Pipe), not net.Pipe:
// net.Pipe's writes wait for the reader, so a TLS peer that aborts a
// handshake (a wrong pin) while the other is still sending its flight
// would deadlock, which TCP never does. Network.OneByte makes every read
// and write move a single byte, so every parser on the way sees its input
// byte by byte.
//
// It is for tests only and must never be imported by a program.
package linktest
