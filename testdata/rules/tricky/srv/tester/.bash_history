make test
./run-integration.sh --env staging
