made by {{ trigger }}
