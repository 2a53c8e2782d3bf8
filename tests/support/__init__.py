"""Helpers shared by more than one test folder: the real stack (`realstack`), Kafka
reads and writes (`kafka_io`), the job runners and checks of the end-to-end tests (`e2e`)
and the record comparison (`compare`). Folder-local helpers stay in their folder."""
