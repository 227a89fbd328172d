"""artdag against real, independent peers started by the tests: Kubo, js-ipfs, Fedify."""
