// Package testkit is for the shim's tests only (the shim binary never imports it): an SCFS v1
// writer and a JWE sealer that mirror the Python side, CAS and LAS stand-ins, image trees, and
// the locator of the cross-language vectors under tests/vectors/.
package testkit
