import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** One real round trip to PostgreSQL, for the readiness probe: it fails when the database cannot answer. */
@Injectable()
export class DatabasePing {
  constructor(private readonly dataSource: DataSource) {}

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}
