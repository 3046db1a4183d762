from custodes.cli import app

app()
