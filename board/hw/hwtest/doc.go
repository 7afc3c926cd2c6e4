// Package hwtest has fakes of package hw's hardware for other packages'
// tests: a Display and an LED that record every successful write and let a
// test wait for one, and a Battery whose reading the test sets.
//
// It is for tests only: it never touches hardware, never sleeps except
// where a caller asks to wait, and never logs.
package hwtest
